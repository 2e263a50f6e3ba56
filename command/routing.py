from django.urls import path

from frontend import consumers

websocket_urlpatterns = [
    path("ws/board/<slug:township>/", consumers.BoardConsumer.as_asgi()),
    path("ws/district/<slug:district>/", consumers.DistrictConsumer.as_asgi()),
    path("ws/dept/<slug:department>/", consumers.DepartmentConsumer.as_asgi()),
    path("ws/supervise/console/", consumers.SupervisorConsumer.as_asgi()),
]
