from flask import Flask
from flask_login import login_required

app = Flask(__name__)


# ruleid: authz-middleware-misordered
@login_required
@app.route("/admin/panel")
def admin_panel():
    return "secret"


@app.route("/account")
# ok: authz-middleware-misordered
@login_required
def account():
    return "mine"
