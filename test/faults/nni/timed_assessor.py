"""The real BTTacklerAssessor, timed: each hook's duration goes to NNI's dispatcher log.

Used by the host fault tests (className timed_assessor.TimedAssessor, codeDirectory test/faults/nni) to measure, inside
NNI's real dispatcher, how long the constructor, assess_trial and trial_end keep the dispatcher's threads. Nothing of
the assessor is replaced; the lines are::

    FAULTS init took=0.004 start=1764263000.123 end=1764263000.127
    FAULTS assess_trial trial=AbCdE results=3 took=1.003 result=Good start=1764263001.5
    FAULTS trial_end trial=AbCdE took=0.001 start=1764263009.1
"""
import logging
import time

from bttackler.nni import BTTacklerAssessor

logger = logging.getLogger("bttackler.faults")


class TimedAssessor(BTTacklerAssessor):
    def __init__(self, **class_args):
        wall, start = time.time(), time.monotonic()
        super().__init__(**class_args)
        logger.info("FAULTS init took=%.3f start=%.3f end=%.3f", time.monotonic() - start, wall, time.time())

    def assess_trial(self, trial_job_id, trial_history):
        wall, start = time.time(), time.monotonic()
        result = super().assess_trial(trial_job_id, trial_history)
        logger.info(
            "FAULTS assess_trial trial=%s results=%d took=%.3f result=%s start=%.3f",
            trial_job_id, len(trial_history), time.monotonic() - start, getattr(result, "name", result), wall,
        )
        return result

    def trial_end(self, trial_job_id, success):
        wall, start = time.time(), time.monotonic()
        super().trial_end(trial_job_id, success)
        logger.info("FAULTS trial_end trial=%s took=%.3f start=%.3f", trial_job_id, time.monotonic() - start, wall)
