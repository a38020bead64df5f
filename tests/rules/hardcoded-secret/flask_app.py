import os

from flask import Flask

app = Flask(__name__)
# ruleid: hardcoded-secret
app.config["SECRET_KEY"] = "q8ZtR2mV9xLpK3wYc7Hn"
# ok: hardcoded-secret
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
# ruleid: hardcoded-secret
DATABASE_URL = "postgresql://app:Zx81kPq0vT@db.internal/app"
# ok: hardcoded-secret
API_KEY = os.environ.get("API_KEY")
# ok: hardcoded-secret
PASSWORD_RESET_TIMEOUT = 3600
# ok: hardcoded-secret
STRIPE_KEY = "<your-stripe-key>"


@app.route("/")
def index():
    return "ok"


@app.route("/unlock", methods=["POST"])
def unlock():
    from flask import request

    body = request.get_json()
    # ruleid: hardcoded-secret
    if body["pin"] == "9731" or request.json.get("api_key") == "k-39fa-2210":
        return "ok"
    return "no", 403
