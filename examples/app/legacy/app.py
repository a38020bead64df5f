from flask import Flask

from .reports import reports

app = Flask(__name__)
app.config["DEBUG"] = True
app.register_blueprint(reports, url_prefix="/reports")
