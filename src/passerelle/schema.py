"""Every domain's tables, gathered for Alembic and for the models-versus-migrations test."""

from passerelle.core import models as _core  # noqa: F401
from passerelle.core.db import Base
from passerelle.monitoring import models as _monitoring  # noqa: F401
from passerelle.registry import models as _registry  # noqa: F401
from passerelle.serving import models as _serving  # noqa: F401
from passerelle.tracing import models as _tracing  # noqa: F401
from passerelle.tracking import models as _tracking  # noqa: F401

metadata = Base.metadata
