from libs.common.migrations import run_env
from services.procurement.persistence.models import Base

run_env(Base.metadata)
