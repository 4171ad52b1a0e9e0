"""The README's quickstart: a user onboarding workflow on the embedded SQLite store."""

import asyncio

from cerebelum import Engine, step, workflow


@step
async def fetch_user(context, inputs):
    return {"id": inputs["user_id"], "age": 17, "email": f"{inputs['user_id']}@example.com"}


@step
async def send_welcome_email(context, fetch_user):  # parameter name = the step whose result it gets
    return {"sent": "welcome", "to": fetch_user["email"]}


@step
async def send_parental_consent(context, fetch_user):
    return {"sent": "consent", "to": fetch_user["email"]}


@workflow
def user_onboarding(wf):
    wf.timeline(fetch_user >> send_welcome_email)
    wf.diverge(fetch_user).when({"age": 17}, target=send_parental_consent)


async def main():
    async with Engine() as engine:  # embedded: ./cerebelum.db (SQLite), steps run in-process
        result = await engine.execute(user_onboarding, {"user_id": "123"})
        print(result.status, result.output)  # "completed", the last step's result


if __name__ == "__main__":
    asyncio.run(main())
