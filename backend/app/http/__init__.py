"""HTTP plumbing: middleware, error rendering, the OpenAPI document, rate limits,
client addresses, dependencies, health and the API lifespan."""
