"""Program MIS mock: programs and beneficiary lists over REST, plus a notification receiver
(webhook with HMAC check, DCI notify, AMQP queue) that tests read back."""

from sandbox_mocks.programs.app import ProgramMis, ProgramMisConfig, create_app
from sandbox_mocks.programs.catalogue import PROGRAMS
from sandbox_mocks.programs.notifications import sign

__all__ = ["PROGRAMS", "ProgramMis", "ProgramMisConfig", "create_app", "sign"]
