from fastapi import FastAPI

# ruleid: debug-mode-enabled
app = FastAPI(debug=True)
# ok: debug-mode-enabled
prod = FastAPI(debug=False)


@app.get("/")
def index():
    return {}
