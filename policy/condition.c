/* SPDX-License-Identifier: MIT */
/*
 * The `when:` condition language: a recursive-descent parser into a small
 * tree stored in one array (children before parents, the root last), its
 * evaluator and its canonical printer. See condition.h for the grammar.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strdist.h"
#include "common/util.h"
#include "policy/condition.h"
#include "policy/condition_internal.h"

/* Numbers are kept to what a double holds exactly in decimal (15 digits), so
 * the canonical text always re-parses to the same value. */
#define NUMBER_MAX_INT_DIGITS 9
#define NUMBER_MAX_FRAC_DIGITS 6

enum token_type {
        TOK_END,
        TOK_SIGNAL,     /* any identifier that is not a keyword */
        TOK_NUMBER,
        TOK_OP,
        TOK_AND,
        TOK_OR,
        TOK_NOT,
        TOK_LPAREN,
        TOK_RPAREN,
};

struct token {
        enum token_type type;
        size_t start, len;
        enum cmp_op op;
};

struct parser {
        const char *text;
        size_t pos;                     /* next byte to lex */
        struct node nodes[CONDITION_MAX_NODES];
        size_t n_nodes;
        unsigned depth;
        /* the first error wins */
        bool failed;
        size_t error_offset;
        char *error;
        size_t error_size;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct parser *p, size_t offset, const char *format, ...) {
        if (!p->failed) {
                p->failed = true;
                p->error_offset = offset;
                if (p->error_size > 0) {
                        va_list ap;
                        va_start(ap, format);
                        vsnprintf(p->error, p->error_size, format, ap);
                        va_end(ap);
                }
        }
        return -EINVAL;
}

static bool is_ident_start(char c) {
        return isalpha((unsigned char) c) || c == '_';
}

static bool is_ident_char(char c) {
        return isalnum((unsigned char) c) || c == '_' || c == '.';
}

/* Lexes the token at p->pos without consuming it. Errors for bytes that start
 * no token. */
static int peek(struct parser *p, struct token *ret) {
        const char *t = p->text;
        size_t i = p->pos;

        while (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')
                i++;
        struct token tok = { .start = i, .len = 1 };
        char c = t[i], d = c ? t[i + 1] : '\0';

        if (c == '\0') {
                /* "missing X" is reported right after the last token, not after trailing blanks */
                tok.type = TOK_END;
                tok.start = p->pos;
                tok.len = 0;
        } else if (is_ident_start(c)) {
                while (is_ident_char(t[i + tok.len]))
                        tok.len++;
                if (tok.len == 3 && memcmp(t + i, "and", 3) == 0)
                        tok.type = TOK_AND;
                else if (tok.len == 2 && memcmp(t + i, "or", 2) == 0)
                        tok.type = TOK_OR;
                else if (tok.len == 3 && memcmp(t + i, "not", 3) == 0)
                        tok.type = TOK_NOT;
                else
                        tok.type = TOK_SIGNAL;
        } else if (isdigit((unsigned char) c) || c == '.') {
                tok.type = TOK_NUMBER;
                tok.len = 0;
                while (is_ident_char(t[i + tok.len]))
                        tok.len++;
                if (t[i + tok.len] == '%')
                        tok.len++;
        } else if (c == '(' || c == ')') {
                tok.type = c == '(' ? TOK_LPAREN : TOK_RPAREN;
        } else if (c == '<' || c == '>') {
                tok.type = TOK_OP;
                tok.len = d == '=' ? 2 : 1;
                tok.op = c == '<' ? (d == '=' ? OP_LE : OP_LT) : (d == '=' ? OP_GE : OP_GT);
        } else if ((c == '=' || c == '!') && d == '=') {
                tok.type = TOK_OP;
                tok.len = 2;
                tok.op = c == '=' ? OP_EQ : OP_NE;
        } else if (c == '=')
                return fail(p, i, "unexpected '=' (did you mean '=='?)");
        else if (c == '!')
                return fail(p, i, "unexpected '!' (use 'not')");
        else if (c == '&')
                return fail(p, i, "unexpected '&' (use 'and')");
        else if (c == '|')
                return fail(p, i, "unexpected '|' (use 'or')");
        else if (isprint((unsigned char) c))
                return fail(p, i, "unexpected character '%c'", c);
        else
                return fail(p, i, "unexpected byte 0x%02x", (unsigned char) c);

        *ret = tok;
        return 0;
}

static void consume(struct parser *p, const struct token *tok) {
        p->pos = tok->start + tok->len;
}

/* A token as it reads in a message: "'and'" or "the end of the condition". */
static const char *describe(const struct parser *p, const struct token *tok, char buf[static 48]) {
        if (tok->type == TOK_END)
                return "the end of the condition";
        int len = tok->len > 32 ? 32 : (int) tok->len;
        snprintf(buf, 48, "'%.*s%s'", len, p->text + tok->start, tok->len > 32 ? "..." : "");
        return buf;
}

static int add_node(struct parser *p, size_t offset, const struct node *n) {
        if (p->n_nodes >= CONDITION_MAX_NODES)
                return fail(p, offset, "condition too long (more than %d comparisons and operators)",
                            CONDITION_MAX_NODES);
        p->nodes[p->n_nodes] = *n;
        p->nodes[p->n_nodes].offset = offset;
        return (int) p->n_nodes++;
}

static enum signal_id suggest_signal(const char *name, size_t len) {
        enum signal_id best = _SIGNAL_INVALID;
        size_t best_d = SIZE_MAX;
        for (enum signal_id id = 0; id < _SIGNAL_MAX; id++) {
                size_t d = strdist(name, len, signal_name(id), strlen(signal_name(id)));
                if (strdist_close(name, len, signal_name(id)) && d < best_d) {
                        best = id;
                        best_d = d;
                }
        }
        return best;
}

static int parse_number(struct parser *p, const struct token *tok, struct operand *ret) {
        const char *s = p->text + tok->start;
        size_t len = tok->len, int_digits = 0, frac_digits = 0, i = 0;
        bool percent = len > 0 && s[len - 1] == '%';
        char buf[NUMBER_MAX_INT_DIGITS + NUMBER_MAX_FRAC_DIGITS + 2];

        if (percent)
                len--;
        while (i < len && isdigit((unsigned char) s[i]))
                i++, int_digits++;
        if (i < len && s[i] == '.') {
                i++;
                while (i < len && isdigit((unsigned char) s[i]))
                        i++, frac_digits++;
                if (frac_digits == 0)
                        i = 0;  /* "5." is not a number */
        }
        if (i != len || int_digits + frac_digits == 0 || (int_digits == 0 && s[0] != '.'))
                return fail(p, tok->start, "invalid number '%.*s'", (int) (len > 32 ? 32 : len), s);
        if (int_digits > NUMBER_MAX_INT_DIGITS || frac_digits > NUMBER_MAX_FRAC_DIGITS)
                return fail(p, tok->start, "number '%.*s' out of range (at most %d digits before and %d after the point)",
                            (int) (len > 32 ? 32 : len), s, NUMBER_MAX_INT_DIGITS, NUMBER_MAX_FRAC_DIGITS);
        memcpy(buf, s, len);
        buf[len] = '\0';
        *ret = (struct operand) { .signal = _SIGNAL_INVALID, .value = strtod(buf, NULL), .percent = percent };
        return 0;
}

static int parse_operand(struct parser *p, struct operand *ret, size_t *ret_start) {
        struct token tok;
        char buf[48];
        int r = peek(p, &tok);
        if (r < 0)
                return r;

        if (tok.type == TOK_NUMBER) {
                r = parse_number(p, &tok, ret);
                if (r < 0)
                        return r;
        } else if (tok.type == TOK_SIGNAL) {
                enum signal_id id = signal_from_name(p->text + tok.start, tok.len);
                if (id == _SIGNAL_INVALID) {
                        enum signal_id hint = suggest_signal(p->text + tok.start, tok.len);
                        int len = tok.len > 32 ? 32 : (int) tok.len;
                        if (hint != _SIGNAL_INVALID)
                                return fail(p, tok.start, "unknown signal '%.*s' (did you mean '%s'?)",
                                            len, p->text + tok.start, signal_name(hint));
                        return fail(p, tok.start, "unknown signal '%.*s'", len, p->text + tok.start);
                }
                *ret = (struct operand) { .signal = id };
        } else
                return fail(p, tok.start, "expected a signal or a number, found %s", describe(p, &tok, buf));

        consume(p, &tok);
        *ret_start = tok.start;
        return 0;
}

/* A number with '%' compared with a signal that is not a percentage is almost
 * certainly a mistake (`tasks.rate > 5%`), so it is refused rather than guessed. */
static int check_percent(struct parser *p, const struct operand *num, size_t num_start, const struct operand *sig) {
        if (sig->signal == _SIGNAL_INVALID || !num->percent || signal_is_percent(sig->signal))
                return 0;
        return fail(p, num_start, "'%%' does not apply to %s, which is not a percentage",
                    signal_name(sig->signal));
}

static int parse_comparison(struct parser *p) {
        struct node n = { .type = NODE_CMP };
        struct token tok;
        size_t lhs_start, rhs_start;
        char buf[48];
        int r;

        r = parse_operand(p, &n.lhs, &lhs_start);
        if (r < 0)
                return r;
        r = peek(p, &tok);
        if (r < 0)
                return r;
        if (tok.type != TOK_OP)
                return fail(p, tok.start, "expected a comparison (< <= > >= == !=) after '%.*s', found %s",
                            (int) (p->pos - lhs_start > 32 ? 32 : p->pos - lhs_start), p->text + lhs_start,
                            describe(p, &tok, buf));
        consume(p, &tok);
        n.op = tok.op;
        r = parse_operand(p, &n.rhs, &rhs_start);
        if (r < 0)
                return r;
        if (n.lhs.signal == _SIGNAL_INVALID && n.rhs.signal == _SIGNAL_INVALID)
                return fail(p, lhs_start, "a comparison needs a signal on one side");
        r = check_percent(p, &n.lhs, lhs_start, &n.rhs);
        if (r < 0)
                return r;
        r = check_percent(p, &n.rhs, rhs_start, &n.lhs);
        if (r < 0)
                return r;
        return add_node(p, lhs_start, &n);
}

static int parse_or(struct parser *p);

static int parse_unary(struct parser *p) {
        struct token tok;
        char buf[48];
        int r = peek(p, &tok);
        if (r < 0)
                return r;

        if (tok.type != TOK_NOT && tok.type != TOK_LPAREN)
                return parse_comparison(p);

        /* Only `not` and `(` nest, so bounding them bounds the recursion. */
        if (p->depth >= CONDITION_MAX_DEPTH)
                return fail(p, tok.start, "condition nested too deeply (more than %d levels)", CONDITION_MAX_DEPTH);
        p->depth++;
        consume(p, &tok);
        if (tok.type == TOK_NOT) {
                r = parse_unary(p);
                if (r >= 0)
                        r = add_node(p, tok.start, &(struct node) { .type = NODE_NOT, .a = (uint16_t) r });
        } else {
                r = parse_or(p);
                if (r >= 0) {
                        struct token close;
                        int k = peek(p, &close);
                        if (k < 0)
                                r = k;
                        else if (close.type == TOK_END)
                                r = fail(p, close.start, "missing ')' to close a '('");
                        else if (close.type != TOK_RPAREN)
                                r = fail(p, close.start, "unexpected %s (expected 'and', 'or' or ')')",
                                         describe(p, &close, buf));
                        else
                                consume(p, &close);
                }
        }
        p->depth--;
        return r;
}

/* One level of left-associative binary operators: `and` over unary, `or` over `and`. */
static int parse_binary(struct parser *p, enum token_type op, enum node_type type, int (*operand)(struct parser *p)) {
        int left = operand(p);
        while (left >= 0) {
                struct token tok;
                int r = peek(p, &tok);
                if (r < 0)
                        return r;
                if (tok.type != op)
                        break;
                consume(p, &tok);
                int right = operand(p);
                if (right < 0)
                        return right;
                left = add_node(p, tok.start, &(struct node) { .type = type, .a = (uint16_t) left, .b = (uint16_t) right });
        }
        return left;
}

static int parse_and(struct parser *p) {
        return parse_binary(p, TOK_AND, NODE_AND, parse_unary);
}

static int parse_or(struct parser *p) {
        return parse_binary(p, TOK_OR, NODE_OR, parse_and);
}

int condition_parse(const char *text, struct condition **ret, size_t *ret_error_offset, char *error, size_t error_size) {
        _cleanup_free_ struct parser *p = NULL;
        struct token tok;
        char buf[48];
        int r;

        if (!text)
                return -EINVAL;
        p = calloc(1, sizeof(*p));   /* ~20 KiB: kept off the stack */
        if (!p)
                return -ENOMEM;
        p->text = text;
        p->error = error;
        p->error_size = error_size;

        if (text[strspn(text, " \t\r\n")] == '\0')
                r = fail(p, 0, "empty condition");
        else
                r = parse_or(p);
        if (r >= 0) {
                r = peek(p, &tok);
                if (r >= 0 && tok.type != TOK_END)
                        r = fail(p, tok.start, "unexpected %s (expected 'and' or 'or')", describe(p, &tok, buf));
        }
        if (r < 0) {
                if (ret_error_offset)
                        *ret_error_offset = p->error_offset;
                return r;
        }

        struct condition *c = malloc(sizeof(struct condition) + p->n_nodes * sizeof(struct node));
        if (!c)
                return -ENOMEM;
        c->n_nodes = p->n_nodes;
        c->signals = 0;
        memcpy(c->nodes, p->nodes, p->n_nodes * sizeof(struct node));
        for (size_t i = 0; i < c->n_nodes; i++)
                if (c->nodes[i].type == NODE_CMP) {
                        if (c->nodes[i].lhs.signal != _SIGNAL_INVALID)
                                c->signals |= 1u << c->nodes[i].lhs.signal;
                        if (c->nodes[i].rhs.signal != _SIGNAL_INVALID)
                                c->signals |= 1u << c->nodes[i].rhs.signal;
                }
        *ret = c;
        return 0;
}

static bool operand_value(const struct operand *o, const struct signals *s, double *ret) {
        if (o->signal == _SIGNAL_INVALID) {
                *ret = o->value;
                return true;
        }
        if (!signals_has(s, o->signal))
                return false;
        *ret = s->value[o->signal];
        return true;
}

static bool compare(const struct node *n, const struct signals *s) {
        double l, r;
        if (!operand_value(&n->lhs, s, &l) || !operand_value(&n->rhs, s, &r))
                return false;
        switch (n->op) {
        case OP_LT: return l < r;
        case OP_LE: return l <= r;
        case OP_GT: return l > r;
        case OP_GE: return l >= r;
        case OP_EQ: return l == r;
        case OP_NE: return l != r;
        default:    return false;
        }
}

/* Recursion depth is bounded by CONDITION_MAX_NODES. */
static bool eval_node(const struct condition *c, size_t i, const struct signals *s) {
        const struct node *n = &c->nodes[i];
        switch (n->type) {
        case NODE_CMP: return compare(n, s);
        case NODE_NOT: return !eval_node(c, n->a, s);
        case NODE_AND: return eval_node(c, n->a, s) && eval_node(c, n->b, s);
        case NODE_OR:  return eval_node(c, n->a, s) || eval_node(c, n->b, s);
        default:       return false;
        }
}

bool condition_eval(const struct condition *c, const struct signals *s) {
        if (!c || c->n_nodes == 0)
                return false;
        return eval_node(c, c->n_nodes - 1, s);
}

uint32_t condition_signals(const struct condition *c) {
        return c ? c->signals : 0;
}

struct writer {
        char *buf;
        size_t size, len;       /* len counts everything, also what did not fit */
};

__attribute__((format(printf, 2, 3)))
static void put(struct writer *w, const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        int n = vsnprintf(w->len < w->size ? w->buf + w->len : NULL, w->len < w->size ? w->size - w->len : 0,
                          format, ap);
        va_end(ap);
        if (n > 0)
                w->len += (size_t) n;
}

static void put_operand(struct writer *w, const struct operand *o) {
        if (o->signal != _SIGNAL_INVALID) {
                put(w, "%s", signal_name(o->signal));
                return;
        }
        /* The shortest fixed-point text that reads back as the same double. */
        char buf[64];
        for (int prec = 0; prec <= NUMBER_MAX_FRAC_DIGITS; prec++) {
                snprintf(buf, sizeof(buf), "%.*f", prec, o->value);
                if (strtod(buf, NULL) == o->value)
                        break;
        }
        put(w, "%s%s", buf, o->percent ? "%" : "");
}

/* Binding strength: a child binding more loosely than its place needs gets parentheses. */
static int precedence(enum node_type t) {
        switch (t) {
        case NODE_OR:  return 1;
        case NODE_AND: return 2;
        default:       return 3;   /* NOT and CMP are both "unary" in the grammar */
        }
}

static void format_node(const struct condition *c, size_t i, struct writer *w);

static void format_child(const struct condition *c, size_t i, int min_precedence, struct writer *w) {
        bool parens = precedence(c->nodes[i].type) < min_precedence;
        if (parens)
                put(w, "(");
        format_node(c, i, w);
        if (parens)
                put(w, ")");
}

static void format_node(const struct condition *c, size_t i, struct writer *w) {
        const struct node *n = &c->nodes[i];
        switch (n->type) {
        case NODE_CMP:
                put_operand(w, &n->lhs);
                put(w, " %s ", op_text[n->op]);
                put_operand(w, &n->rhs);
                break;
        case NODE_NOT:
                put(w, "not ");
                format_child(c, n->a, 3, w);
                break;
        case NODE_AND:
        case NODE_OR:
                /* Left-associative: the right operand of the same operator needs parentheses. */
                format_child(c, n->a, precedence(n->type), w);
                put(w, n->type == NODE_AND ? " and " : " or ");
                format_child(c, n->b, precedence(n->type) + 1, w);
                break;
        default:
                break;
        }
}

int condition_format(const struct condition *c, char *buf, size_t size) {
        struct writer w = { .buf = buf, .size = size };
        if (size > 0)
                buf[0] = '\0';
        if (!c || c->n_nodes == 0)
                return -EINVAL;
        format_node(c, c->n_nodes - 1, &w);
        if (w.len >= size)
                return -ENOBUFS;
        return (int) w.len;
}

/* The top-level conjuncts of node i, left to right. */
static size_t conjuncts(const struct condition *c, size_t i, uint16_t *ret, size_t n) {
        if (c->nodes[i].type != NODE_AND) {
                ret[n] = (uint16_t) i;
                return n + 1;
        }
        return conjuncts(c, c->nodes[i].b, ret, conjuncts(c, c->nodes[i].a, ret, n));
}

/* c read as a demand and its guards: its conjuncts in part, the demand first;
 * 0 when c is empty or its first conjunct is not a comparison (no demand). */
static size_t demand_and_guards(const struct condition *c, uint16_t part[static CONDITION_MAX_NODES]) {
        if (!c || c->n_nodes == 0)
                return 0;
        size_t n = conjuncts(c, c->n_nodes - 1, part, 0);
        return c->nodes[part[0]].type == NODE_CMP ? n : 0;
}

/* The signal a comparison is about: its left side's, else its right side's. */
static enum signal_id compared_signal(const struct node *x) {
        return x->lhs.signal != _SIGNAL_INVALID ? x->lhs.signal : x->rhs.signal;
}

/* The side of comparison x that reads a signal unavailable in s, or NULL. */
static const struct operand *unavailable_side(const struct node *x, const struct signals *s) {
        double unused;
        if (!operand_value(&x->lhs, s, &unused))
                return &x->lhs;
        if (!operand_value(&x->rhs, s, &unused))
                return &x->rhs;
        return NULL;
}

/* A signal's value as a person reads it: "pool.cpu 100%", "load1 0.75",
 * "psi.cpu n/a"; a number in its canonical form (80.0% as 80%). */
static void put_value(struct writer *w, const struct operand *o, const struct signals *s) {
        double v;
        if (o->signal == _SIGNAL_INVALID)
                return put_operand(w, o);
        if (!operand_value(o, s, &v))
                return put(w, "%s n/a", signal_name(o->signal));
        char buf[32];
        int n = snprintf(buf, sizeof(buf), v == floor(v) && fabs(v) < 1e15 ? "%.0f" : "%.2f", v);
        while (n > 2 && strchr(buf, '.') && (buf[n - 1] == '0' || buf[n - 1] == '.'))
                buf[--n] = '\0';
        put(w, "%s %s%s", signal_name(o->signal), buf, signal_is_percent(o->signal) ? "%" : "");
}

enum signal_id condition_blocker(const struct condition *c, const struct signals *s, char *buf, size_t size) {
        static const enum cmp_op negated[_OP_MAX] = {
                [OP_LT] = OP_GE, [OP_LE] = OP_GT, [OP_GT] = OP_LE, [OP_GE] = OP_LT, [OP_EQ] = OP_NE, [OP_NE] = OP_EQ,
        };
        uint16_t part[CONDITION_MAX_NODES];

        if (size == 0)
                return _SIGNAL_INVALID;
        size_t n = demand_and_guards(c, part);
        if (n < 2 || !eval_node(c, part[0], s))
                return _SIGNAL_INVALID;
        for (size_t k = 1; k < n; k++) {
                const struct node *x = &c->nodes[part[k]];
                if (eval_node(c, part[k], s))
                        continue;
                if (x->type != NODE_CMP)
                        return _SIGNAL_INVALID;
                struct writer w = { .buf = buf, .size = size };
                const struct operand *missing = unavailable_side(x, s);
                if (missing)
                        put_value(&w, missing, s);
                else {
                        put_value(&w, &x->lhs, s);
                        put(&w, " %s ", op_text[negated[x->op]]);
                        put_value(&w, &x->rhs, s);
                }
                return compared_signal(x);
        }
        return _SIGNAL_INVALID;
}

enum condition_demand condition_unmet_demand(const struct condition *c, const struct signals *s, char *buf,
                                             size_t size) {
        uint16_t part[CONDITION_MAX_NODES];

        size_t n = demand_and_guards(c, part);
        if (n == 0)
                return CONDITION_DEMAND_NONE;
        const struct node *x = &c->nodes[part[0]];
        if (compare(x, s))
                return CONDITION_DEMAND_HOLDS;
        if (size > 0) {
                struct writer w = { .buf = buf, .size = size };
                format_node(c, part[0], &w);
                put(&w, " (");
                if (x->lhs.signal != _SIGNAL_INVALID)
                        put_value(&w, &x->lhs, s);
                if (x->lhs.signal != _SIGNAL_INVALID && x->rhs.signal != _SIGNAL_INVALID)
                        put(&w, ", ");
                if (x->rhs.signal != _SIGNAL_INVALID)
                        put_value(&w, &x->rhs, s);
                put(&w, ")");
        }
        return unavailable_side(x, s) ? CONDITION_DEMAND_UNKNOWN : CONDITION_DEMAND_UNMET;
}

struct condition *condition_free(struct condition *c) {
        free(c);
        return NULL;
}
