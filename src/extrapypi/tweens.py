"""Request log lines: ``user method path status duration``, one per request, at INFO.

Two tweens because the user is only readable inside the transaction (the session closes on
commit) while the duration should include the commit and the file publishing after it.
"""

import logging
import time

from pyramid.interfaces import ISecurityPolicy
from pyramid.tweens import EXCVIEW, INGRESS

log = logging.getLogger("extrapypi.requests")

USER_KEY = "extrapypi.log_user"


def request_log_tween_factory(handler, registry):
    """Outermost: times the whole request and writes the line."""

    def request_log_tween(request):
        start = time.perf_counter()
        status = "500"
        try:
            response = handler(request)
            status = str(response.status_code)
            return response
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s %s %.1fms",
                    request.environ.get(USER_KEY, "-"),
                    request.method,
                    request.path_qs,
                    status,
                    (time.perf_counter() - start) * 1000,
                )

    return request_log_tween


def remember_user_tween_factory(handler, registry):
    """Inside the transaction: notes who the request turned out to be, without authenticating."""

    def remember_user_tween(request):
        try:
            return handler(request)
        finally:
            policy = registry.queryUtility(ISecurityPolicy)
            known = getattr(policy, "identity_if_known", None)
            identity = known(request) if known is not None else None
            if identity is not None:
                try:
                    request.environ[USER_KEY] = identity.username
                except Exception:  # a failed transaction expired the row: log without a name
                    request.environ[USER_KEY] = "?"

    return remember_user_tween


def includeme(config) -> None:
    config.add_tween("extrapypi.tweens.request_log_tween_factory", under=INGRESS)
    config.add_tween(
        "extrapypi.tweens.remember_user_tween_factory",
        under="pyramid_tm.tm_tween_factory",
        over=EXCVIEW,
    )
