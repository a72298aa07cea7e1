/*
 * The handler pool of a function with concurrency N > 1: N threads take
 * jobs (invocations) from a queue, pack their replies into the worker's
 * `done` buffer under the worker lock, and wake the I/O thread through
 * the eventfd, which then writes every ready reply in as few write()
 * calls as it can. Both hand-offs are batched so that a busy pool costs
 * few wake-ups per call (see imp_worker_t).
 */
#include <stdlib.h>
#include <unistd.h>

#include "worker/crash.h"
#include "worker/invoke.h"
#include "worker/pool.h"

/*
 * Decides whether to signal jobs_cond: jobs are queued, a thread is idle
 * and no earlier signal is still on its way. One woken thread is enough;
 * if it leaves jobs behind it wakes the next (pool_main()). Call with the
 * lock held and signal after unlocking, so the woken thread does not block
 * on the lock at once. That is safe because every thread returning from
 * the wait clears `waking` and looks at the queue under the lock: a signal
 * that finds nobody waiting was made redundant by such a thread.
 */
static bool jobs_wake_needed(imp_worker_t *worker) {
  if (worker->queue_head == NULL || worker->idle == 0 || worker->waking)
    return false;
  worker->waking = true;
  return true;
}

static void wake_io(imp_worker_t *worker) {
  uint64_t one = 1;
  ssize_t w = write(worker->wake_fd, &one, sizeof one);
  (void)w; /* EAGAIN: the counter is already non-zero, a wake-up is due */
}

/*
 * A handler thread. Takes one job at a time and goes on taking jobs until
 * the queue is empty, so at high load one wake-up serves many jobs.
 * Finished jobs are freed outside the lock, after taking the next one,
 * which saves a lock round trip per job.
 */
static void *pool_main(void *arg) {
  imp_worker_t *worker = arg;
  void *altstack = imp_wk_altstack_install();
  invocation_t *finished = NULL;
  pthread_mutex_lock(&worker->lock);
  for (;;) {
    if (worker->queue_head == NULL && finished != NULL) {
      pthread_mutex_unlock(&worker->lock);
      imp_wk_invocation_destroy(finished);
      finished = NULL;
      pthread_mutex_lock(&worker->lock);
      continue;
    }
    while (worker->queue_head == NULL && !worker->stopping) {
      worker->idle++;
      pthread_cond_wait(&worker->jobs_cond, &worker->lock);
      worker->idle--;
      worker->waking = false;
    }
    if (worker->stopping) break;
    invocation_t *invocation = worker->queue_head;
    worker->queue_head = invocation->next;
    if (worker->queue_head == NULL) worker->queue_tail = NULL;
    /* Jobs left behind must not wait for this one's handler, which may
     * take long or never return. */
    bool wake_job = jobs_wake_needed(worker);
    pthread_mutex_unlock(&worker->lock);
    if (wake_job) pthread_cond_signal(&worker->jobs_cond);
    imp_wk_invocation_destroy(finished);
    finished = NULL;

    bool ran = imp_wk_call_begin();
    int status = 0;
    imp_buf_t batch_out = {0};
    if (ran) {
      if (invocation->batch)
        imp_wk_batch_run(worker, invocation->request, invocation->received_ns,
                         &batch_out);
      else
        status = worker->fn.handle(&invocation->ctx);
      imp_wk_call_end();
    }

    pthread_mutex_lock(&worker->lock);
    /* A reply to a connection that has since been replaced is dropped: the
     * new peer does not know its id. */
    if (ran && invocation->generation == worker->generation &&
        (invocation->batch
             ? imp_buf_append(&worker->done, batch_out.data, batch_out.len)
             : imp_wk_invocation_reply(invocation, status, &worker->done)) != 0)
      imp_wk_fatal_oom("queueing a reply");
    imp_buf_free(&batch_out);
    worker->outstanding--;
    worker->job_finished = true;
    finished = invocation;
    if (!worker->io_awake) {
      /* The eventfd is written outside the lock, which the woken I/O
       * thread wants first thing. */
      worker->io_awake = true;
      pthread_mutex_unlock(&worker->lock);
      wake_io(worker);
      pthread_mutex_lock(&worker->lock);
    }
  }
  pthread_mutex_unlock(&worker->lock);
  imp_wk_invocation_destroy(finished);
  imp_wk_altstack_free(altstack);
  return NULL;
}

void imp_wk_pool_stop(imp_worker_t *worker) {
  if (worker->nthreads == 0) return;
  pthread_mutex_lock(&worker->lock);
  worker->stopping = true;
  pthread_cond_broadcast(&worker->jobs_cond);
  pthread_mutex_unlock(&worker->lock);
  for (unsigned i = 0; i < worker->nthreads; i++)
    pthread_join(worker->threads[i], NULL);
  free(worker->threads);
  worker->threads = NULL;
  worker->nthreads = 0;

  pthread_mutex_lock(&worker->lock);
  invocation_t *queue = worker->queue_head;
  worker->queue_head = worker->queue_tail = NULL;
  worker->stopping = false;
  worker->idle = 0;
  worker->waking = false;
  worker->io_awake = false;
  while (queue != NULL) {
    invocation_t *next = queue->next;
    worker->outstanding--;
    imp_wk_invocation_destroy(queue);
    queue = next;
  }
  pthread_mutex_unlock(&worker->lock);
}

int imp_wk_pool_start(imp_worker_t *worker, unsigned n) {
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) return -rc;
  worker->threads = calloc(n, sizeof *worker->threads);
  if (worker->threads == NULL) {
    rc = ENOMEM;
    goto out;
  }
  rc = pthread_attr_setstacksize(&attr, HANDLER_STACK);
  if (rc != 0) goto out;
  for (unsigned i = 0; i < n; i++) {
    rc = pthread_create(&worker->threads[i], &attr, pool_main, worker);
    if (rc != 0) break;
    worker->nthreads++;
  }
out:
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    if (worker->nthreads > 0) {
      imp_wk_pool_stop(worker);
    } else {
      free(worker->threads);
      worker->threads = NULL;
    }
    return -rc;
  }
  return 0;
}

unsigned imp_wk_outstanding(imp_worker_t *worker) {
  pthread_mutex_lock(&worker->lock);
  unsigned n = worker->outstanding;
  pthread_mutex_unlock(&worker->lock);
  return n;
}

void imp_wk_jobs_submit(imp_worker_t *worker) {
  if (worker->batch_head == NULL) return;
  pthread_mutex_lock(&worker->lock);
  if (worker->queue_tail != NULL)
    worker->queue_tail->next = worker->batch_head;
  else
    worker->queue_head = worker->batch_head;
  worker->queue_tail = worker->batch_tail;
  worker->outstanding += worker->batch_len;
  bool wake = jobs_wake_needed(worker);
  pthread_mutex_unlock(&worker->lock);
  worker->batch_head = worker->batch_tail = NULL;
  worker->batch_len = 0;
  if (wake) pthread_cond_signal(&worker->jobs_cond);
}

/* Most jobs that may wait in the queue before the I/O thread stops reading:
 * the server never sends more than `concurrency` at once, but a misbehaving
 * peer must not make the worker buffer without bound. */
unsigned imp_wk_queue_limit(const imp_worker_t *worker) {
  return worker->fn.concurrency * 2 + 16;
}
