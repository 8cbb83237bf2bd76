"""Tasks: the request and response schemas, the jobs sent to a task deployment, and the pure policies a request uses
(prompts, quality, conversation, restore; serving.pipeline runs them). The task catalogue and entity names are the
shared vocabulary (serving.vocabulary); the replica side is serving.replica."""
