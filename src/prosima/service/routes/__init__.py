"""The service's routers, one per area of the API; ``prosima.service.app`` includes them all."""
