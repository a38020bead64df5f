from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .deps import get_current_user
from .routers import admin, orders, public

app = FastAPI(title="shop")
app.add_middleware(
    CORSMiddleware,
    allow_origins=["*"],
    allow_credentials=True,
    allow_methods=["*"],
    allow_headers=["*"],
)

app.include_router(public.router, prefix="/api/v1")
app.include_router(orders.router, prefix="/api/v1", dependencies=[Depends(get_current_user)])
app.include_router(admin.router, prefix="/api/v1/admin", dependencies=[Depends(get_current_user)])
