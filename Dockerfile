# The web process and the django-q2 cluster share this image (compose.yaml: the command picks which).
# Built from the same pinned requirements as every other install. Settings come from the environment (.env.example).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATIC_ROOT=/app/static DJANGO_ENV_FILE=/nonexistent/.env PORT=8000

WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY . .
# The static files are collected into the image: any SECRET_KEY will do for this one step (nothing is signed).
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0 \
    && useradd --system --uid 10001 --home-dir /app app
USER app

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live/' % os.environ.get('PORT', '8000'), timeout=4)"
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi:application"]
