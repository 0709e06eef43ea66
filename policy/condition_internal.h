/* SPDX-License-Identifier: MIT */
/*
 * The parsed form of a condition, shared by the parser and evaluator
 * (condition.c) and the lint (condition_lint.c); nothing else reads it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/signals.h"

enum node_type {
        NODE_CMP,
        NODE_NOT,
        NODE_AND,
        NODE_OR,
        _NODE_MAX,
};

enum cmp_op {
        OP_LT,
        OP_LE,
        OP_GT,
        OP_GE,
        OP_EQ,
        OP_NE,
        _OP_MAX,
};

static const char *const op_text[_OP_MAX] = {
        [OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">=", [OP_EQ] = "==", [OP_NE] = "!=",
};

struct operand {
        enum signal_id signal;  /* _SIGNAL_INVALID for a number */
        double value;
        bool percent;           /* written with '%' */
};

struct node {
        enum node_type type;
        enum cmp_op op;                 /* NODE_CMP */
        struct operand lhs, rhs;        /* NODE_CMP */
        uint16_t a, b;                  /* children: NOT uses a; AND/OR use a and b */
        size_t offset;                  /* in the text: a comparison's first byte, an operator's keyword */
};

struct condition {
        size_t n_nodes;                 /* the root is nodes[n_nodes - 1] */
        uint32_t signals;
        struct node nodes[];
};
