"""Interactive search as a service, without Ray: the HTTP contract (`api`) and the roles (`service`) that the
Serve deployments in deployments/ wrap one to one."""
from .api import ApiError, Limits, RoundRequest, parse_round_request, round_response, scene_view
from .service import QuestionerService, Catalog, RetrieverService, ServiceSpec, AnswererService, load_dataset, simulate

__all__ = ["ApiError", "QuestionerService", "Catalog", "Limits", "RoundRequest", "RetrieverService", "ServiceSpec", "AnswererService", "load_dataset",
           "parse_round_request", "round_response", "scene_view", "simulate"]
