from cerebelum.cli import main

main(prog_name="cerebelum")
