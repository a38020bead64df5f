import jwt
from flask import Flask

app = Flask(__name__)
app.config["SECRET_KEY"] = "secret123"


def issue(user_id):
    # ruleid: jwt-weak-secret
    return jwt.encode({"sub": user_id}, app.config.get("SECRET_KEY"), algorithm="HS256")


def issue_safe(user_id, key):
    # ok: jwt-weak-secret
    return jwt.encode({"sub": user_id}, key, algorithm="HS256")


@app.route("/")
def index():
    return "ok"
