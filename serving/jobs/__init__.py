"""The job rules both sides of serving share: how a job is shown and announced, the queue's messages, and which
callback URLs may be called. Neither the web side (``serving.web``) nor the worker side (``serving.worker``) is
imported here."""
