from libs.common.migrations import run_env
from services.finance.persistence.models import Base

run_env(Base.metadata)
