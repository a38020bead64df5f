import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
# ruleid: debug-mode-enabled
DEBUG = True
ALLOWED_HOSTS = ["api.example.com"]
