import jwt
from fastapi import FastAPI

app = FastAPI()
VERIFY = False


def claims_unsafe(token: str, key: str):
    # ruleid: jwt-unverified
    return jwt.decode(token, key, algorithms=["HS256"], options={"verify_signature": VERIFY})


def claims_none(token: str, key: str):
    # ruleid: jwt-unverified
    return jwt.decode(token, key, algorithms=["HS256", "none"])


def claims_safe(token: str, key: str):
    # ok: jwt-unverified
    return jwt.decode(token, key, algorithms=["HS256"])


@app.get("/")
def index():
    return {}
