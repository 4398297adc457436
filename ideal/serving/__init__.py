"""Interactive search as a service, without Ray: the HTTP contract (`api`) and the roles (`service`) that the
Serve deployments in deployments/ wrap one to one."""
from .api import ApiError, Limits, RoundRequest, parse_round_request, round_response, scene_view
from .service import (AnswererService, Catalog, QuestionerService, RetrieverService, ServiceSpec, simulate,
                      simulate_here)

__all__ = ["AnswererService", "ApiError", "Catalog", "Limits", "QuestionerService", "RetrieverService", "RoundRequest",
           "ServiceSpec", "parse_round_request", "round_response", "scene_view", "simulate", "simulate_here"]
