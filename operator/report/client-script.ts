/**
 * The page's own script, inlined after Chart.js. Plain ES2017 in a string: the project compiles
 * for Node, not the DOM. It draws every chart from the embedded JSON and, in the live view,
 * re-fetches the page when the server announces a change (server-sent events) and swaps the
 * content in. It never writes HTML from data: the server rendered (and escaped) all of it.
 */
export const CLIENT_SCRIPT = String.raw`(function () {
  'use strict';
  var charts = [];
  // Reference lines (chance, bias, limits) are marked hideInLegend by the server: they explain themselves.
  Chart.defaults.plugins.legend.labels.filter = function (item, data) { return !data.datasets[item.datasetIndex].hideInLegend; };
  function draw() {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    var el = document.getElementById('fedgit-data');
    var data = el ? JSON.parse(el.textContent) : { charts: [] };
    data.charts.forEach(function (spec) {
      var canvas = document.getElementById(spec.id);
      if (canvas) charts.push(new Chart(canvas, spec.config));
    });
    window.fedgitCharts = charts;
  }
  draw();
  if (document.body.getAttribute('data-live') !== '1' || typeof EventSource === 'undefined') return;
  var status = document.getElementById('fedgit-live');
  var say = function (text) { if (status) status.textContent = text; };
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch('./', { cache: 'no-store' }).then(function (response) {
      if (!response.ok) throw new Error('HTTP ' + response.status);
      return response.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, 'text/html');
      ['fedgit-state', 'fedgit-main', 'fedgit-data'].forEach(function (id) {
        var next = fresh.getElementById(id), old = document.getElementById(id);
        if (next && old) old.replaceWith(document.adoptNode(next));
      });
      draw();
      say('live: updated ' + new Date().toLocaleTimeString());
    }).catch(function (e) {
      say('live: update failed (' + e.message + '), will retry on the next change');
    }).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }
  var source = new EventSource('events');
  source.addEventListener('open', function () { say('live: connected'); });
  // Each event carries the version of the page the server would send now; the first comes on connecting,
  // so a change missed while disconnected is picked up too.
  source.addEventListener('update', function (event) {
    var state = document.getElementById('fedgit-state');
    if (!state || state.getAttribute('data-version') !== event.data) refresh();
  });
  source.addEventListener('error', function () { say('live: connection lost, reconnecting'); });
})();
`;
