/* tracegate trace viewer: reads {location}/api/traces and renders a list
   and a waterfall. Plain browser JavaScript, no build step, no libraries. */
(function () {
  'use strict';

  var api = 'api/traces';
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var e = document.createElement(tag), k;
    for (k in attrs || {}) {
      if (k === 'text') { e.textContent = attrs[k]; }
      else if (k === 'style') { e.setAttribute('style', attrs[k]); }
      else { e.setAttribute(k, attrs[k]); }
    }
    (children || []).forEach(function (c) { if (c) { e.appendChild(c); } });
    return e;
  }

  var palette = ['#2f6fde', '#e8833a', '#3aa57a', '#8e5bd0', '#d94f70',
                 '#1f9bb5', '#b8962e', '#6d7a8c'];

  function color(name) {
    var h = 0, i;
    if (name === 'tracegate') { return '#1d2330'; }
    for (i = 0; i < name.length; i++) { h = (h * 31 + name.charCodeAt(i)) >>> 0; }
    return palette[h % palette.length];
  }

  function dur(us) {
    if (us >= 1000000) { return (us / 1000000).toFixed(2) + ' s'; }
    if (us >= 1000) { return (us / 1000).toFixed(us >= 100000 ? 0 : 1) + ' ms'; }
    return Math.round(us) + ' µs';
  }

  function when(ms) {
    var d = new Date(ms);
    function p(n, w) { n = String(n); while (n.length < (w || 2)) { n = '0' + n; } return n; }
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()) +
      '.' + p(d.getMilliseconds(), 3);
  }

  function getJSON(url) {
    return fetch(url, { cache: 'no-store' }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error(j.error || ('HTTP ' + r.status)); }
        return j;
      });
    });
  }

  function show(view) {
    $('list-view').hidden = view !== 'list';
    $('trace-view').hidden = view !== 'trace';
  }

  /* ---- list view ---- */

  function loadList() {
    var q = $('q').value.trim();
    var url = api + '?limit=200' + (q ? '&q=' + encodeURIComponent(q) : '');
    return getJSON(url).then(function (j) {
      renderList(j.traces, q);
      if (q && j.traces.length === 1 && /^#\/?$/.test(location.hash || '#/')
          && window.__searched) {
        window.__searched = false;
        location.hash = '#/trace/' + j.traces[0].trace_id;
      }
    }).catch(function (e) {
      $('list-status').textContent = 'error: ' + e.message;
    });
  }

  function renderList(traces, q) {
    var tb = $('trace-list').querySelector('tbody');
    tb.textContent = '';
    traces.forEach(function (t) {
      var svcs = t.services.filter(function (s) { return s === t.root_service; })
        .concat(t.services.filter(function (s) { return s !== t.root_service; }).sort());
      var badges = el('td', {}, svcs.map(function (s) {
        return el('span', { 'class': 'badge', style: 'background:' + color(s),
                            text: s });
      }));
      var row = el('tr', { 'class': 'trace-row', 'data-trace-id': t.trace_id }, [
        el('td', { 'class': 'mono', text: when(t.start_ms) }),
        el('td', {}, [
          el('span', { 'class': 'root-name',
                       text: (t.root_service ? t.root_service + ': ' : '') +
                             (t.root_name || '(unnamed)') }),
          t.root_path && t.root_name.indexOf(t.root_path) < 0
            ? el('span', { 'class': 'root-path mono', text: ' ' + t.root_path }) : null,
          el('span', { 'class': 'tid mono', text: t.trace_id })
        ]),
        badges,
        el('td', { 'class': 'num', text: dur(t.duration_us) }),
        el('td', { 'class': 'num span-count', text: String(t.span_count) }),
        el('td', { 'class': 'num' + (t.error_count ? ' err' : ''),
                   text: String(t.error_count) }),
        el('td', { 'class': 'mono', text: t.x_trace_id || '' })
      ]);
      row.addEventListener('click', function () {
        location.hash = '#/trace/' + t.trace_id;
      });
      tb.appendChild(row);
    });
    $('list-empty').hidden = traces.length > 0;
    $('list-status').textContent = traces.length + ' trace' +
      (traces.length === 1 ? '' : 's') + (q ? ' matching "' + q + '"' : '') +
      ' · updated ' + when(Date.now());
  }

  /* ---- trace view ---- */

  /* Depth-first order from the roots; spans whose parent is not in the
     trace are roots too (marked), so nothing is ever hidden. */
  function order(spans) {
    var byId = {}, kids = {}, out = [], roots = [];
    spans.forEach(function (s) { byId[s.span_id] = s; });
    spans.forEach(function (s) {
      if (s.parent_span_id && byId[s.parent_span_id]) {
        (kids[s.parent_span_id] = kids[s.parent_span_id] || []).push(s);
      } else {
        s.orphan = !!s.parent_span_id;
        roots.push(s);
      }
    });
    function byStart(a, b) { return a.offset_us - b.offset_us; }
    function walk(s, depth) {
      s.depth = depth;
      out.push(s);
      (kids[s.span_id] || []).sort(byStart).forEach(function (c) {
        walk(c, depth + 1);
      });
    }
    roots.sort(byStart).forEach(function (r) { walk(r, 0); });
    return out;
  }

  function loadTrace(id) {
    return getJSON(api + '/' + encodeURIComponent(id)).then(renderTrace)
      .catch(function (e) {
        $('trace-title').textContent = 'Trace ' + id + ': ' + e.message;
        $('wf-rows').textContent = '';
        $('trace-meta').textContent = '';
      });
  }

  function meta(dl, k, v) {
    dl.appendChild(el('div', {}, [el('dt', { text: k }), el('dd', { text: v })]));
  }

  function renderTrace(j) {
    var t = j.trace, spans = order(j.spans), total = t.duration_us || 1;
    var rows = $('wf-rows'), axis = $('wf-axis'), dl = $('trace-meta'), i;

    $('trace-title').textContent = (t.root_service ? t.root_service + ': ' : '') +
      (t.root_name || '(unnamed)') +
      (t.root_path && t.root_name.indexOf(t.root_path) < 0 ? '  ' + t.root_path : '');
    dl.textContent = '';
    meta(dl, 'Trace ID', t.trace_id);
    if (t.x_trace_id) { meta(dl, 'X-Trace-ID', t.x_trace_id); }
    meta(dl, 'Started', when(t.start_ms));
    meta(dl, 'Duration', dur(t.duration_us));
    meta(dl, 'Spans', String(t.span_count));
    meta(dl, 'Errors', String(t.error_count));
    meta(dl, 'Services', t.services.join(', '));

    axis.textContent = '';
    for (i = 0; i <= 4; i++) {
      axis.appendChild(el('span', { style: 'left:' + (i * 25) + '%',
                                    text: dur(total * i / 4) }));
    }

    rows.textContent = '';
    spans.forEach(function (s) {
      var left = 100 * s.offset_us / total;
      var width = Math.max(100 * s.duration_us / total, 0.2);
      var track = el('div', { 'class': 'wf-track' });
      for (i = 1; i < 4; i++) {
        track.appendChild(el('div', { 'class': 'tick', style: 'left:' + (i * 25) + '%' }));
      }
      track.appendChild(el('div', {
        'class': 'span-bar' + (s.status === 'ERROR' ? ' error' : ''),
        style: 'left:' + left + '%;width:' + width + '%;background:' + color(s.service)
      }));
      track.appendChild(el('div', {
        'class': 'span-dur',
        style: left + width > 80 ? 'right:' + (100 - left + 0.5) + '%'
                                 : 'left:' + (left + width + 0.5) + '%',
        text: dur(s.duration_us)
      }));
      var label = el('div', { 'class': 'wf-label',
                              style: 'padding-left:' + (10 + 16 * s.depth) + 'px' }, [
        el('span', { 'class': 'dot', style: 'background:' + color(s.service) }),
        el('span', { 'class': 'svc', text: s.service }),
        el('span', { text: s.name }),
        el('span', { 'class': 'kind', text: s.kind }),
        s.status === 'ERROR' ? el('span', { 'class': 'err-mark', text: '!' }) : null,
        s.orphan ? el('span', { 'class': 'orphan', text: '(parent missing)' }) : null
      ]);
      var row = el('div', { 'class': 'span-row', 'data-span-id': s.span_id },
                   [label, track]);
      row.addEventListener('click', function () { detail(s, row); });
      rows.appendChild(row);
    });
    $('span-detail').hidden = true;
    if (spans.length) { detail(spans[0], rows.firstChild); }
  }

  function detail(s, row) {
    var d = $('span-detail'), tb = el('tbody'), k;
    Array.prototype.forEach.call(document.querySelectorAll('.span-row.selected'),
      function (r) { r.classList.remove('selected'); });
    row.classList.add('selected');
    function add(key, v) {
      tb.appendChild(el('tr', {}, [el('td', { text: key }),
                                   el('td', { text: String(v) })]));
    }
    add('service', s.service);
    add('span_id', s.span_id);
    add('parent_span_id', s.parent_span_id || '(root)');
    add('kind', s.kind);
    add('status', s.status);
    add('start (from trace start)', dur(s.offset_us));
    add('duration', dur(s.duration_us));
    add('reported by', s.received ? 'the service (OTLP to the gateway)' : 'the gateway');
    for (k in s.attributes) { add(k, s.attributes[k]); }
    if (s.dropped_attributes_count) { add('dropped attributes', s.dropped_attributes_count); }
    d.textContent = '';
    d.appendChild(el('h2', { text: s.service + ' · ' + s.name }));
    d.appendChild(el('table', { 'class': 'attrs' }, [tb]));
    d.hidden = false;
  }

  /* ---- routing ---- */

  function route() {
    var m = /^#\/trace\/([0-9a-f]{32})/.exec(location.hash);
    clearInterval(timer);
    if (m) {
      show('trace');
      loadTrace(m[1]);
      return;
    }
    show('list');
    loadList();
    timer = setInterval(function () {
      if ($('auto').checked && !document.hidden) { loadList(); }
    }, 3000);
  }

  $('search').addEventListener('submit', function (ev) {
    ev.preventDefault();
    window.__searched = true;
    if (location.hash.indexOf('#/trace/') === 0) { location.hash = '#/'; }
    else { loadList(); }
  });
  window.addEventListener('hashchange', route);
  /* ?q= as a form sends it; malformed %-encoding (?q=%E0) makes
     decodeURIComponent throw, and then the raw text is the query */
  var q0 = /[?&]q=([^&]*)/.exec(location.search), qv;
  if (q0) {
    qv = q0[1].replace(/\+/g, ' ');
    try { qv = decodeURIComponent(qv); } catch (e) { /* keep the raw text */ }
    $('q').value = qv;
  }
  route();
}());
