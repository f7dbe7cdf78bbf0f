"""The REST controllers, one module per resource (the app lists their routers)."""
