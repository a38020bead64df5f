import os

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer

app = FastAPI()
router = APIRouter()
oauth2 = OAuth2PasswordBearer(tokenUrl="token")


def get_current_user(token: str = Depends(oauth2)):
    if not token:
        raise HTTPException(status_code=401)
    return token


# ruleid: missing-authn
@router.get("/debug", include_in_schema=False)
def debug_info():
    return {"env": dict(os.environ)}


# ok: missing-authn
@router.get("/debug/authed")
def debug_info_authed(user=Depends(get_current_user)):
    return {"env": dict(os.environ)}


# ok: missing-authn
@router.get("/health")
def health():
    return {"status": "ok"}


app.include_router(router)
