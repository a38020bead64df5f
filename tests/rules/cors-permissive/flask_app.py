from flask import Flask
from flask_cors import CORS

app = Flask(__name__)
# ruleid: cors-permissive
CORS(app, supports_credentials=True)


@app.route("/")
def index():
    return "ok"
