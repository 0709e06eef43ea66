/* SPDX-License-Identifier: MIT */
/*
 * Scaling in: which of the pool's workers goes when there are too many, and
 * which slot waiting out its restart backoff is left empty instead.
 */
#include "supervisor/pool_scale_in.h"
#include "supervisor/pool_start.h"

/* Which live worker to stop when there are too many: a stale one first,
 * then one that is ready rather than one still starting (scaling in keeps
 * the worker about to serve), then in a server pool the least busy (a
 * server in the middle of requests finishes them on stop_signal, but an
 * idle one has none), the newest among equals, which has the least work
 * invested in it. */
static unsigned surplus_rank(const struct child *c) {
        return child_is_stale(c) ? 2 : child_is_unready(c) ? 0 : 1;
}

static double worker_busy(struct pool *p, const struct worker *w) {
        double busy = p->owner && p->owner->busy ? p->owner->busy(w->child.pid, p->owner->userdata) : -1;
        return busy >= 0 ? busy : 0;   /* unknown: as idle as any, the age decides */
}

/* Whether w should be stopped before pick. */
static bool surplus_before(struct pool *p, const struct worker *w, const struct worker *pick) {
        unsigned rank = surplus_rank(&w->child), pick_rank = surplus_rank(&pick->child);
        if (rank != pick_rank)
                return rank > pick_rank;
        double busy = worker_busy(p, w), pick_busy = worker_busy(p, pick);
        /* Server pools only: elsewhere the newest goes, as ever (sharding by id). */
        if (rank == 1 && busy != pick_busy && pool_notify(p))
                return busy < pick_busy;
        return w->child.started >= pick->child.started;
}

struct worker *pool_pick_surplus(struct pool *p) {
        struct worker *pick = NULL;
        for (unsigned i = 0; i < p->n_alloc; i++) {
                struct worker *w = p->workers[i];
                if (child_is_live(&w->child) && (!pick || surplus_before(p, w, pick)))
                        pick = w;
        }
        return pick;
}

/* Leaves the backoff of the highest slot in it (scaled down meanwhile). */
void pool_cancel_backoff(struct pool *p) {
        for (unsigned i = p->n_alloc; i-- > 0;)
                if (p->workers[i]->child.state == CHILD_BACKOFF) {
                        child_dispatch(&p->workers[i]->child, CHILD_EVENT_STOP);
                        return;
                }
}
