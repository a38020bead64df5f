from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

app = FastAPI()
trusted = FastAPI()
ORIGINS = ["*"]

# ruleid: cors-permissive
app.add_middleware(CORSMiddleware, allow_origins=ORIGINS, allow_credentials=True)
# ok: cors-permissive
trusted.add_middleware(CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True)


@app.get("/")
def index():
    return {}
