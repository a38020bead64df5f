import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
# ruleid: allowed-hosts-wildcard
ALLOWED_HOSTS = ["*"]
