"""kserve's ModelServer, bound to a chosen address (kserve itself always binds REST to 0.0.0.0)."""

from __future__ import annotations

import kserve


class BoundModelServer(kserve.ModelServer):
    def __init__(self, host: str, **options):
        super().__init__(**options)
        self.host = host

    async def _serve(self) -> None:
        # ModelServer.start() builds the REST server, then awaits _serve(); uvicorn reads the address when it binds.
        if self._rest_server is not None:
            self._rest_server.config.host = self.host
        await super()._serve()
