"""An embedded model server that speaks TF Serving's REST and gRPC APIs, and its client."""
