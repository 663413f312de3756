"""``dreamreel serve``: the studio in the browser and the AUTOMATIC1111 API, over one loaded model
and a job queue kept on disk (app.py: the web app; queue.py: the queue, its worker and its events;
forms.py: forms from the recipe fields; a1111.py: the API; security.py: what every request passes).
FastAPI and uvicorn come from the ``serve`` extra and are imported only by the command."""
