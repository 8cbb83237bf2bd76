"""Tasks: the jobs sent to a task deployment and the TaskBackend they go through (jobs), and the pure policies a request
uses (prompts, quality, restore; serving.pipeline runs them). The task catalogue, entity names, conversations and the
request and response schemas are the shared vocabulary (serving.vocabulary); the replica side is serving.replica."""
