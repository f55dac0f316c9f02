"""The web admin console for shared-service staff (issue 10): server-rendered pages over
the services' gRPC APIs, called with the signed-in user's bearer token."""
