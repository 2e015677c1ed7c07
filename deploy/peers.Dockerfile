# Images of the MCP servers behind the compose stack's gateways (the same peers the
# black-box tests run): `target: demo` and `target: everything` in docker-compose.yml.
# Build context: the repository root.

# The official Python SDK demo server (tests/py/demo_server.py, pinned tests/py/requirements.txt).
FROM python:3.11-slim AS demo
RUN useradd --system --uid 10002 demo
WORKDIR /app
COPY tests/py/requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY tests/py/demo_server.py ./
USER 10002
EXPOSE 3001
# --allow-any-host: the gateway reaches it by its service name, not a loopback Host.
CMD ["python", "demo_server.py", "--host", "0.0.0.0", "--port", "3001", \
     "--calls-file", "/tmp/calls.json", "--allow-any-host"]

# @modelcontextprotocol/server-everything over streamable HTTP, the version tests/node pins.
FROM node:22-slim AS everything
RUN npm install -g @modelcontextprotocol/server-everything@2026.8.31 && npm cache clean --force
USER node
ENV PORT=3002
EXPOSE 3002
CMD ["mcp-server-everything", "streamableHttp"]
