/* SPDX-License-Identifier: MIT */
/*
 * The file as YAML: read whole (it is small, and bounded), checked for what
 * libyaml reports badly or not at all (binary data, invalid UTF-8, tabs in
 * indentation, nesting deep enough to make its parser crawl), and parsed
 * into a libyaml document. Also the helpers that read its nodes, and the
 * mapping from a byte inside a scalar back to its place in the file.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/loader.h"

/* ---- nodes and scalars ---- */

const yaml_node_t *node_get(struct loader *l, int index) {
        return yaml_document_get_node(&l->doc, index);
}

const char *scalar_text(const yaml_node_t *n) {
        return (const char *) n->data.scalar.value;
}

bool scalar_is_null(const yaml_node_t *n) {
        if (n->type != YAML_SCALAR_NODE)
                return false;
        if (n->data.scalar.length == 0)
                return true;
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *s = scalar_text(n);
        return strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

void yaml_node_describe(const yaml_node_t *n, char *buf, size_t size) {
        if (n->type == YAML_MAPPING_NODE)
                snprintf(buf, size, "a mapping");
        else if (n->type == YAML_SEQUENCE_NODE)
                snprintf(buf, size, "a list");
        else if (scalar_is_null(n))
                snprintf(buf, size, "an empty value");
        else {
                size_t len = n->data.scalar.length;
                snprintf(buf, size, "'%.*s%s'", (int) (len > 40 ? 40 : len), scalar_text(n), len > 40 ? "..." : "");
        }
}

/* ---- positions inside a scalar (for errors in a `when:` condition) ---- */

/* The byte offset in the file of a 1-based (line, column in characters). */
static size_t file_offset(const struct loader *l, size_t line0, size_t column0) {
        if (line0 >= l->n_lines)
                return l->size;
        size_t i = l->line_start[line0];
        while (column0 > 0 && i < l->size && l->text[i] != '\n') {
                i++;
                while (i < l->size && ((unsigned char) l->text[i] & 0xC0) == 0x80)
                        i++;
                column0--;
        }
        return i;
}

/*
 * Maps a byte offset inside a scalar's value to its line and column in the
 * file, by walking the source text and the value side by side: equal bytes
 * advance both, source whitespace (line folding, indentation) and quoting
 * advance the source only. Exact for plain and quoted single-line scalars and
 * for block scalars; a close approximation inside escape sequences.
 */
void scalar_position(const struct loader *l, const yaml_node_t *n, size_t offset, unsigned *ret_line,
                     unsigned *ret_column) {
        const char *v = scalar_text(n);
        size_t vi = 0;
        size_t si = file_offset(l, n->start_mark.line, n->start_mark.column);
        size_t start = si;
        yaml_scalar_style_t style = n->data.scalar.style;

        if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
                si++;
        else if (style == YAML_LITERAL_SCALAR_STYLE || style == YAML_FOLDED_SCALAR_STYLE) {
                while (si < l->size && l->text[si] != '\n')
                        si++;
        }
        while (vi < offset && si < l->size) {
                char s = l->text[si];
                if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE && s == '\'' && si + 1 < l->size && l->text[si + 1] == '\'') {
                        si += 2;
                        vi++;
                } else if (style == YAML_DOUBLE_QUOTED_SCALAR_STYLE && s == '\\') {
                        si += 2;
                        vi++;
                } else if (s == v[vi]) {
                        si++;
                        vi++;
                } else
                        si++;
        }
        /* Skip source whitespace that stands before the target byte (folded line breaks). */
        while (si < l->size && l->text[si] != v[vi] && isspace((unsigned char) l->text[si]))
                si++;

        unsigned line = (unsigned) n->start_mark.line, column = (unsigned) n->start_mark.column;
        for (size_t i = start; i < si; i++) {
                if (l->text[i] == '\n') {
                        line++;
                        column = 0;
                } else if (((unsigned char) l->text[i] & 0xC0) != 0x80)
                        column++;
        }
        *ret_line = line + 1;
        *ret_column = column + 1;
}

/* ---- the file ---- */

int conf_refuse_too_large(const char *path, size_t size, struct conf_diagnostics *diag) {
        if (size <= CONF_MAX_FILE_SIZE)
                return 0;
        if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0,
                                 "too large (more than %d KiB; a configuration is a few KiB)",
                                 CONF_MAX_FILE_SIZE / 1024) < 0)
                return -ENOMEM;
        return -EFBIG;
}

int conf_read_file(const char *path, struct conf_diagnostics *diag, char **ret, size_t *ret_size) {
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        int r;

        if (fd < 0) {
                r = -errno;
                if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0, "cannot open: %s", strerror(-r)) < 0)
                        return -ENOMEM;
                return r;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode)) {
                if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0, "is a directory, not a configuration file") < 0)
                        return -ENOMEM;
                return -EISDIR;
        }
        /* One byte more than the limit tells "too large" from "exactly at the limit". */
        _cleanup_free_ char *buf = malloc(CONF_MAX_FILE_SIZE + 2);
        if (!buf)
                return -ENOMEM;
        size_t size = 0;
        while (size <= CONF_MAX_FILE_SIZE) {
                ssize_t k = read(fd, buf + size, CONF_MAX_FILE_SIZE + 1 - size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        if (conf_diagnostics_add(diag, CONF_ERROR, path, 0, 0, "cannot read: %s", strerror(-r)) < 0)
                                return -ENOMEM;
                        return r;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        r = conf_refuse_too_large(path, size, diag);
        if (r < 0)
                return r;
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 if it is not valid UTF-8. */
static size_t utf8_length(const unsigned char *s, size_t n) {
        size_t len;
        if (s[0] < 0x80)
                return 1;
        else if (s[0] >= 0xC2 && s[0] <= 0xDF)
                len = 2;
        else if (s[0] >= 0xE0 && s[0] <= 0xEF)
                len = 3;
        else if (s[0] >= 0xF0 && s[0] <= 0xF4)
                len = 4;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++)
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
        return len;
}

/*
 * Finds the lines, and what libyaml would report obscurely or not at all:
 * binary data, invalid UTF-8, tabs in indentation. Returns false when the file
 * cannot be parsed as YAML (the reason has been reported).
 */
static bool prescan(struct loader *l) {
        size_t lines = 1, tabs = 0;
        for (size_t i = 0; i < l->size; i++)
                lines += l->text[i] == '\n';
        l->line_start = calloc(lines, sizeof(size_t));
        if (!l->line_start) {
                l->oom = -ENOMEM;
                return false;
        }
        l->n_lines = 1;
        unsigned column = 0;
        bool indent = true;
        for (size_t i = 0; i < l->size;) {
                unsigned char ch = (unsigned char) l->text[i];
                unsigned line = (unsigned) l->n_lines;
                if (ch == '\0') {
                        loader_error_at(l, line, column + 1, "binary data (a NUL byte): not a YAML text file");
                        return false;
                }
                size_t len = utf8_length((const unsigned char *) l->text + i, l->size - i);
                if (len == 0) {
                        loader_error_at(l, line, column + 1, "invalid UTF-8 (byte 0x%02x): not a YAML text file", ch);
                        return false;
                }
                if (ch == '\n') {
                        l->line_start[l->n_lines++] = i + 1;
                        column = 0;
                        indent = true;
                        i++;
                        continue;
                }
                if (indent && ch == '\t') {
                        /* Only a tab before content matters: YAML indents with spaces alone. */
                        size_t j = i;
                        while (j < l->size && (l->text[j] == ' ' || l->text[j] == '\t'))
                                j++;
                        if (j < l->size && l->text[j] != '\n' && l->text[j] != '#' && l->text[j] != '\r') {
                                loader_error_at(l, line, column + 1, "tab character in indentation (YAML indents with spaces)");
                                tabs++;
                        }
                        indent = false;
                } else if (ch != ' ')
                        indent = false;
                column++;
                i += len;
        }
        return tabs == 0;
}

static void yaml_error(struct loader *l, const yaml_parser_t *parser) {
        if (parser->error == YAML_MEMORY_ERROR) {
                l->oom = -ENOMEM;
                return;
        }
        size_t line = parser->problem_mark.line, column = parser->problem_mark.column;
        if (parser->error == YAML_READER_ERROR) {
                /* Reader errors carry a byte offset, not a mark. */
                line = 0;
                while (line + 1 < l->n_lines && l->line_start[line + 1] <= parser->problem_offset)
                        line++;
                column = parser->problem_offset - (line < l->n_lines ? l->line_start[line] : 0);
        }
        if (parser->context)
                loader_error_at(l, (unsigned) line + 1, (unsigned) column + 1, "YAML syntax error: %s (%s at line %zu, column %zu)",
                             parser->problem ? parser->problem : "invalid YAML", parser->context,
                             parser->context_mark.line + 1, parser->context_mark.column + 1);
        else
                loader_error_at(l, (unsigned) line + 1, (unsigned) column + 1, "YAML syntax error: %s",
                             parser->problem ? parser->problem : "invalid YAML");
}

/*
 * libyaml's parser takes time quadratic in the nesting depth (1 MiB of '['
 * took 29 minutes in `corral check`, and as long on a reload), so a first
 * pass over the events refuses a file nested deeper than CONF_MAX_DEPTH
 * before the document is built; it stops at the first level too deep, which
 * libyaml reaches after reading at most ~1 KiB further. Returns false when
 * the file is refused (reported). A syntax error ends the pass quietly: the
 * document loader meets it at the same place and reports it.
 */
static bool check_depth(struct loader *l) {
        yaml_parser_t parser;
        yaml_event_t event;
        unsigned depth = 0;
        bool ok = true, done = false;

        if (!yaml_parser_initialize(&parser)) {
                l->oom = -ENOMEM;
                return false;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *) l->text, l->size);
        while (!done && yaml_parser_parse(&parser, &event)) {
                switch (event.type) {
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        if (++depth > CONF_MAX_DEPTH) {
                                loader_error_at(l, (unsigned) event.start_mark.line + 1,
                                             (unsigned) event.start_mark.column + 1,
                                             "nested too deeply (more than %d levels of lists and mappings)",
                                             CONF_MAX_DEPTH);
                                ok = false;
                                done = true;
                        }
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        depth--;
                        break;
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                default:
                        break;
                }
                yaml_event_delete(&event);
        }
        yaml_parser_delete(&parser);
        return ok;
}

/* Parses the text into l->doc; false when it has no usable document (reported). */
static bool load_document(struct loader *l, bool *ret_doc) {
        yaml_parser_t parser;
        yaml_document_t extra;
        bool ok = false;

        if (!yaml_parser_initialize(&parser)) {
                l->oom = -ENOMEM;
                return false;
        }
        yaml_parser_set_input_string(&parser, (const unsigned char *) l->text, l->size);
        if (!yaml_parser_load(&parser, &l->doc)) {
                yaml_error(l, &parser);
                goto finish;
        }
        *ret_doc = true;
        const yaml_node_t *root = yaml_document_get_root_node(&l->doc);
        if (!root || scalar_is_null(root)) {
                loader_error_at(l, 1, 1, "empty configuration (expected settings such as 'command:' and 'workers:')");
                goto finish;
        }
        /* A second document would be silently ignored: refuse it. */
        if (!yaml_parser_load(&parser, &extra)) {
                yaml_error(l, &parser);
                goto finish;
        }
        const yaml_node_t *second = yaml_document_get_root_node(&extra);
        if (second)
                error_at(l, second, "a second YAML document (a configuration is one document)");
        yaml_document_delete(&extra);
        ok = !second;
finish:
        yaml_parser_delete(&parser);
        return ok;
}


bool yaml_document_read(struct loader *l, bool *ret_doc) {
        return prescan(l) && check_depth(l) && load_document(l, ret_doc);
}
