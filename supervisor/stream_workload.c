/* SPDX-License-Identifier: MIT */
/*
 * Stream mode as a workload (workload.h): a pool whose workers the stream
 * feeds. The pool is sized, reloaded and reported as a plain pool is; the
 * stream adds the tasks.* signals and fields and owns the stop, which ends
 * once the lines sent are answered.
 */
#include <errno.h>
#include <stdlib.h>

#include "conf/queue_url.h"
#include "supervisor/log.h"
#include "supervisor/pool.h"
#include "supervisor/stream.h"
#include "supervisor/stream_bar.h"
#include "supervisor/stream_signals.h"

struct stream_workload {
        struct pool *pool;
        struct stream *stream;
};

static int sw_start(void *w, unsigned size) {
        struct stream_workload *sw = w;
        const struct corral_config *c = sw->pool->config;
        char from[512];   /* a queue's password stays out of the log */
        log_info("stream from %s%s: %u-%u workers, starting %u", queue_url_masked(c->tasks.from, from, sizeof(from)),
                 c->tasks.keep_order ? ", in order" : "", c->workers.min, sw->pool->max, size);
        return pool_set_desired(sw->pool, size);
}

static unsigned sw_size(const void *w) {
        return ((const struct stream_workload *) w)->pool->desired;
}

static unsigned sw_max(const void *w) {
        return ((const struct stream_workload *) w)->pool->max;
}

static void sw_resize(void *w, unsigned n) {
        (void) pool_set_desired(((struct stream_workload *) w)->pool, n);
}

static void sw_stop(void *w) {
        stream_stop(((struct stream_workload *) w)->stream);
}

static bool sw_stopping(const void *w) {
        const struct stream_workload *sw = w;
        return stream_stopping(sw->stream) || sw->pool->stopping;
}

static int sw_reconfigure(void *w, const struct corral_config *config) {
        struct stream_workload *sw = w;
        int r = pool_reconfigure(sw->pool, config);
        if (r < 0)
                return r;
        stream_reconfigure(sw->stream, config);
        return 0;
}

static int sw_set_shm(void *w, struct shm_set *shm) {
        pool_set_shm(((struct stream_workload *) w)->pool, shm);
        return 0;
}

static size_t sw_slots(const void *w) {
        return ((const struct stream_workload *) w)->pool->n_alloc;
}

static size_t sw_running_pids(const void *w, pid_t *pids, size_t n) {
        return pool_running_pids(((const struct stream_workload *) w)->pool, pids, n);
}

static void sw_fill_signals(void *w, struct signals *s) {
        stream_fill_signals(((struct stream_workload *) w)->stream, s);
}

static void sw_check_limits(void *w, const struct sampler *sampler) {
        pool_recycle_over_rss(((struct stream_workload *) w)->pool, sampler);
}

static void sw_fill_snapshot(const void *w, struct metrics_snapshot *s, const struct workload_view *v) {
        const struct stream_workload *sw = w;
        pool_fill_snapshot(sw->pool, s, v);
        stream_fill_snapshot(sw->stream, s);
}

static void sw_describe(const void *w, char *buf, size_t size) {
        pool_describe(((const struct stream_workload *) w)->pool, buf, size);
}

static void sw_free(void *w) {
        struct stream_workload *sw = w;
        if (!sw)
                return;
        sw->stream = stream_free(sw->stream);   /* first: it writes its last results, leaves the pool */
        sw->pool = pool_free(sw->pool);
        free(sw);
}

static const struct workload_ops stream_workload_ops = {
        .kind = "stream",
        .start = sw_start,
        .size = sw_size,
        .max = sw_max,
        .resize = sw_resize,
        .stop = sw_stop,
        .stopping = sw_stopping,
        .reconfigure = sw_reconfigure,
        .set_shm = sw_set_shm,
        .slots = sw_slots,
        .running_pids = sw_running_pids,
        .fill_signals = sw_fill_signals,
        .check_limits = sw_check_limits,
        .fill_snapshot = sw_fill_snapshot,
        .describe = sw_describe,
        .free = sw_free,
};

int stream_workload_new(sd_event *e, const struct corral_config *config, const struct workload_options *o,
                        const struct workload_owner *owner, struct workload *ret) {
        struct stream_workload *sw = calloc(1, sizeof(*sw));
        int r;

        if (!sw)
                return log_error_errno(ENOMEM, "Failed to start the stream: %m");
        r = pool_new(e, config, &sw->pool);
        if (r < 0) {
                sw_free(sw);
                return log_error_errno(r, "Failed to create the pool: %m");
        }
        sw->pool->owner = owner;
        sw->pool->listen = o->listen;
        r = stream_new(e, config, sw->pool, &sw->stream);
        if (r < 0) {
                if (r != -EINVAL)   /* -EINVAL: logged */
                        log_error_errno(r, "Failed to start the stream: %m");
                sw_free(sw);
                return r;
        }
        stream_set_on_stopping(sw->stream, owner->stopping, owner->userdata);
        stream_set_bar(sw->stream, batch_bar_mode(o->quiet, o->bar));
        *ret = (struct workload) { .ops = &stream_workload_ops, .impl = sw };
        return 0;
}
