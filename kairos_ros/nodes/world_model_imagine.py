"""The world model node's Imagine action: goals, cancels and results (a mixin of WorldModelNode).

A goal is accepted while fewer than imagine_queue goals are queued or running (core.scheduler),
else refused at once; a queued goal can be cancelled, and expires after imagine_timeout. An accepted goal's candidate chunk is checked, the newest history is taken
and the job is queued; the inference thread (or, with imagine_worker 'separate', the Imagine
thread with a model instance of its own, at a lower CPU priority) runs it, or a cancel or expiry
ends it, and completes the future the execute callback awaits.
"""
from __future__ import annotations

import time

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future

from kairos_msgs.action import Imagine
from kairos_ros.backends import make_backend
from kairos_ros.core.chunks import ChunkError, validate_chunk
from kairos_ros.core.realtime import lower_thread_priority
from kairos_ros.core.scheduler import IMAGINE, Cancelled
from kairos_ros.nodes.convert import chunk_from_msg, future_to_msg
from kairos_ros.params.world_model import backend_options

IMAGINE_NICE = 10  # the Imagine thread's nice value (control runs at the process's own)


class ImagineMixin:
    """Needs from the node: spec, params, history, cond, scheduler, imagine_backend, executor, _warn."""

    def _make_imagine_backend(self, p: dict):
        """Imagine on a model instance of its own, on a thread of its own (imagine_worker 'separate'):
        a long Imagine (predicted frames: seconds on a CPU) then never holds up a control chunk.
        None: Imagine shares the inference thread and its backend (remote: no Imagine, one session)."""
        if p["imagine_worker"] == "separate" and p["imagine_queue"] > 0 and p["backend"] != "remote":
            return make_backend(p["backend"], self.spec, **backend_options(p))
        return None

    def _start_imagine_server(self, requests) -> None:
        # Requests are read from a deeper queue than the default 10: a burst of goals or resets from
        # several clients must each get an answer (goals beyond imagine_queue refused at once), not be
        # overwritten unread.
        self.imagine_server = ActionServer(
            self, Imagine, "~/imagine", execute_callback=self._imagine,
            goal_callback=self._imagine_goal, cancel_callback=self._imagine_cancel,
            goal_service_qos_profile=requests, cancel_service_qos_profile=requests,
            result_service_qos_profile=requests)
        self.imagine_jobs: dict = {}  # goal id -> ImagineJob, while queued or running

    def _imagine_work(self) -> None:
        """The Imagine thread: its own model instance, at a lower CPU priority than control."""
        lower_thread_priority(IMAGINE_NICE)
        epoch = self.scheduler.reset_epoch
        while True:
            task = self.scheduler.next(control=False)
            if task is None:
                return
            kind, job = task
            if kind == IMAGINE:
                if epoch != self.scheduler.reset_epoch:  # the world state was reset meanwhile
                    epoch = self.scheduler.reset_epoch
                    self.imagine_backend.reset()
                self._run_imagine(self.imagine_backend, job)

    def _run_imagine(self, backend, job) -> None:
        history, candidate = job.payload
        start = time.perf_counter()
        try:
            pred = backend.imagine(history, candidate)
            pred.latency = time.perf_counter() - start
            job.finish(pred)
        except (ValueError, RuntimeError) as exc:
            job.finish(exc)

    def _imagine_goal(self, _goal):
        if self.scheduler.reserve_imagine():
            return GoalResponse.ACCEPT
        self._warn("imagine_refused", f"Imagine goal refused: {self.params['imagine_queue']} goals already "
                                      "queued or running (imagine_queue)")
        return GoalResponse.REJECT

    def _imagine_cancel(self, goal_handle):
        job = self.imagine_jobs.get(bytes(goal_handle.goal_id.uuid))
        if job is not None:
            self.scheduler.cancel_imagine(job)  # still queued: it ends now; running: it ends as canceled after
        return CancelResponse.ACCEPT

    async def _imagine(self, goal_handle):
        try:
            return await self._imagine_reserved(goal_handle)
        finally:
            self.imagine_jobs.pop(bytes(goal_handle.goal_id.uuid), None)
            self.scheduler.release_imagine()

    async def _imagine_reserved(self, goal_handle):
        result = Imagine.Result()

        def end(message: str):
            result.success, result.message = False, message
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
            else:
                goal_handle.abort()
            return result

        try:
            candidate = chunk_from_msg(goal_handle.request.candidate)
            validate_chunk(candidate, self.spec)
        except (ValueError, ChunkError) as exc:
            return end(f"candidate refused: {exc}")
        with self.cond:
            history = self.history.snapshot()
        if not history:
            return end("no observation received yet")
        if goal_handle.is_cancel_requested:
            return end("canceled")
        goal_handle.publish_feedback(Imagine.Feedback(progress=0.0))
        # The inference thread (or a cancel/expiry) completes the future; the executor resumes this
        # coroutine then.
        future = Future(executor=self.executor)
        future.add_done_callback(lambda _f: None)
        self.imagine_jobs[bytes(goal_handle.goal_id.uuid)] = self.scheduler.submit_imagine(
            (history, candidate), future.set_result)
        pred = await future
        if isinstance(pred, Cancelled) or goal_handle.is_cancel_requested:
            return end("canceled" if isinstance(pred, Cancelled) else "canceled (the prediction ran and is discarded)")
        if isinstance(pred, Exception):
            return end(f"{'not run' if not isinstance(pred, (ValueError, RuntimeError)) else 'backend failed'}: {pred}")
        goal_handle.publish_feedback(Imagine.Feedback(progress=1.0))
        result.success = True
        result.message = pred.extras.get("message") or f"imagined {len(pred.frames)} frames"
        result.future = future_to_msg(pred, self.params["frame_id"], True)
        scores = {k: float(v) for k, v in pred.extras.items() if k != "message" and isinstance(v, (int, float))}
        result.score_names, result.scores = list(scores), list(scores.values())
        goal_handle.succeed()
        return result
