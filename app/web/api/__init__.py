"""The JSON API: endpoints declared with pydantic models; requests checked and OpenAPI built from them."""
