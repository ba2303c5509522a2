'use strict';
/*
 * Reads OTLP/JSON lines (tracegate's spans.jsonl) with a decoder that is not
 * ours: the protobufjs classes generated from the upstream
 * opentelemetry-proto files that @opentelemetry/otlp-transformer ships.
 * Used by t/64-otlp-json-node.t; run `npm ci` here first.
 *
 *   node decode.js FILE      one JSON object per span on stdout, or
 *                            "ERROR line N: why" lines and exit 1
 *
 * Each line is held to the OTLP/JSON rules (opentelemetry-proto
 * docs/specification.md, JSON Protobuf Encoding) as the Collector's file
 * exporter writes them:
 *   - no null anywhere, and no field with its default value (0, "", "0",
 *     false, [], {}), except the member of a oneof (AnyValue.value);
 *   - traceId / spanId / parentSpanId lowercase hex of 16 / 8 bytes;
 *   - int64 and fixed64 (times, intValue) as decimal strings, enums as
 *     integers, keys lowerCamelCase.
 * Then the line goes through fromObject (ids turned from hex into bytes, the
 * one exception OTLP makes to the protobuf JSON mapping), verify, a binary
 * encode/decode and toObject, and what comes back must equal the line:
 * a key the schema does not know, a value of the wrong type or a renamed
 * field would not survive that.
 */

const fs = require('fs');

let root;
try {
    root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
} catch (e) {
    process.stdout.write('MISSING @opentelemetry/otlp-transformer: ' + e.message + '\n');
    process.exit(2);
}

const Req = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

const ID_LEN = { traceId: 16, spanId: 8, parentSpanId: 8 };
const INT64 = new Set(['startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano', 'intValue']);
const ENUMS = new Set(['kind', 'code']);
const ONEOF = new Set(['stringValue', 'boolValue', 'intValue', 'doubleValue',
                       'arrayValue', 'kvlistValue', 'bytesValue']);

function isDefault(v) {
    return v === 0 || v === '' || v === '0' || v === false
           || (Array.isArray(v) && v.length === 0)
           || (v !== null && typeof v === 'object' && !Array.isArray(v)
               && Object.keys(v).length === 0);
}

/* The OTLP/JSON rules above; returns the problems found under path. */
function check(v, path, errs) {
    if (v === null) {
        errs.push(path + ': null');
        return;
    }
    if (Array.isArray(v)) {
        v.forEach((x, i) => check(x, path + '[' + i + ']', errs));
        return;
    }
    if (typeof v !== 'object') {
        return;
    }
    for (const k of Object.keys(v)) {
        const x = v[k];
        const p = path + '.' + k;
        if (!/^[a-z][a-zA-Z0-9]*$/.test(k) && !/\.attributes\[\d+\]$/.test(path)) {
            errs.push(p + ': key is not lowerCamelCase');
        }
        if (x !== null && isDefault(x) && !ONEOF.has(k)) {
            errs.push(p + ': default value ' + JSON.stringify(x) + ' written');
        }
        if (k in ID_LEN && !(typeof x === 'string'
                             && new RegExp('^[0-9a-f]{' + 2 * ID_LEN[k] + '}$').test(x))) {
            errs.push(p + ': not ' + ID_LEN[k] + ' bytes of lowercase hex: ' + JSON.stringify(x));
        }
        if (INT64.has(k) && !(typeof x === 'string' && /^-?[0-9]+$/.test(x))) {
            errs.push(p + ': 64-bit integer not a decimal string: ' + JSON.stringify(x));
        }
        if (ENUMS.has(k) && !Number.isInteger(x)) {
            errs.push(p + ': enum not an integer: ' + JSON.stringify(x));
        }
        check(x, p, errs);
    }
}

/* A copy with the hex ids as bytes (to) or the bytes back as hex (from). */
function ids(v, toBytes) {
    if (Array.isArray(v)) {
        return v.map((x) => ids(x, toBytes));
    }
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) {
        return v;
    }
    const o = {};
    for (const k of Object.keys(v)) {
        if (k in ID_LEN && toBytes && typeof v[k] === 'string') {
            o[k] = Buffer.from(v[k], 'hex');
        } else if (k in ID_LEN && !toBytes && v[k] && typeof v[k].length === 'number') {
            o[k] = Buffer.from(v[k]).toString('hex');
        } else {
            o[k] = ids(v[k], toBytes);
        }
    }
    return o;
}

/* Deep equality of two JSON values; returns the first difference or null. */
function diff(a, b, path) {
    if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b)
        || (a === null) !== (b === null)) {
        return path + ': ' + JSON.stringify(a) + ' became ' + JSON.stringify(b);
    }
    if (a === null || typeof a !== 'object') {
        return a === b ? null : path + ': ' + JSON.stringify(a) + ' became ' + JSON.stringify(b);
    }
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    for (const k of ka) {
        if (!kb.includes(k)) {
            return path + '.' + k + ': not in the schema (dropped by the decoder)';
        }
    }
    for (const k of kb) {
        if (!ka.includes(k)) {
            return path + '.' + k + ': added by the decoder';
        }
    }
    for (const k of ka) {
        const d = diff(a[k], b[k], path + '.' + k);
        if (d !== null) {
            return d;
        }
    }
    return null;
}

function anyValue(v) {
    for (const k of ONEOF) {
        if (k in v) {
            return { type: k, value: v[k] };
        }
    }
    return { type: 'none' };
}

function attrs(list) {
    const o = {};
    for (const kv of list || []) {
        o[kv.key] = anyValue(kv.value || {});
    }
    return o;
}

function main() {
    const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n');
    let bad = 0;

    lines.forEach((line, i) => {
        if (!/\S/.test(line)) {
            return;
        }
        const n = i + 1;
        let j;
        try {
            j = JSON.parse(line);
        } catch (e) {
            process.stdout.write('ERROR line ' + n + ': not JSON: ' + e.message + '\n');
            bad++;
            return;
        }
        const errs = [];
        check(j, '', errs);
        let msg, back;
        try {
            msg = Req.fromObject(ids(j, true));
            const v = Req.verify(msg);
            if (v !== null) {
                errs.push('verify: ' + v);
            }
            msg = Req.decode(Req.encode(msg).finish());
            back = ids(Req.toObject(msg, { longs: String, enums: Number, bytes: Array }), false);
            const d = diff(j, back, '');
            if (d !== null) {
                errs.push('round trip: ' + d);
            }
        } catch (e) {
            errs.push('decoder: ' + e.message);
        }
        if (errs.length) {
            for (const e of errs) {
                process.stdout.write('ERROR line ' + n + ': ' + e + '\n');
            }
            bad++;
            return;
        }
        for (const rs of back.resourceSpans || []) {
            const res = attrs(rs.resource && rs.resource.attributes);
            for (const ss of rs.scopeSpans || []) {
                for (const s of ss.spans || []) {
                    process.stdout.write(JSON.stringify({
                        line: n,
                        traceId: s.traceId,
                        spanId: s.spanId,
                        parentSpanId: s.parentSpanId || '',
                        name: s.name || '',
                        kind: s.kind || 0,
                        flags: s.flags || 0,
                        start: s.startTimeUnixNano || '0',
                        end: s.endTimeUnixNano || '0',
                        status: (s.status && s.status.code) || 0,
                        attributes: attrs(s.attributes),
                        droppedAttributesCount: s.droppedAttributesCount || 0,
                        links: (s.links || []).map((l) => ({ traceId: l.traceId, spanId: l.spanId,
                                                            flags: l.flags || 0 })),
                        resource: res,
                        scope: ss.scope || {},
                    }) + '\n');
                }
            }
        }
    });
    process.exit(bad ? 1 : 0);
}

main();
