import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
# ok: allowed-hosts-wildcard
ALLOWED_HOSTS = ["api.example.com"]
