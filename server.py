"""The digit recognition web service's entry point; the app itself is in the `web` package (web/app.py).

gunicorn 'server:create_app()'     (see Procfile)
python server.py                   (local use, on $PORT or 5000)
"""

import sys

from web.app import create_app  # the `web` package first: it sets up the process before NumPy loads
from web.settings import SettingError

__all__ = ["create_app"]

if __name__ == "__main__":
    try:
        application = create_app()
    except SettingError as error:
        sys.exit(f"digit-recognition: {error}")
    application.run(host=application.config["HOST"], port=application.config["PORT"])
