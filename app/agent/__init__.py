"""The Statesman agent: the process that claims remote runs from a server and executes Terraform for them.

It talks to the server's agent API (``/api/agent/v1``) over HTTP(S) with an agent token, and nothing else: no
database, no storage, no server secrets. One job (a run's plan or apply) at a time, each in a private scratch
directory that is removed afterwards. Started as ``statesman agent --url URL`` (see ``app.agent.cli``).
"""
