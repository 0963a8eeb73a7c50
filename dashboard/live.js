// The live feed (docs/live-protocol.md) as the page uses it: one WebSocket to /v1/live on this
// origin, authenticated by its first message (the token never goes into the URL), subscribed to
// the campaigns the current page shows, reconnected after a drop.

const reconnectMs = 2_000;

export class Live {
  /** handlers: {status(list), breaker(frame), budget(frame), archive(frame), health(h), state(text), refused()} */
  constructor(token, handlers) {
    this.token = token;
    this.on = handlers;
    this.ws = null;
    this.ready = false;
    this.wanted = [];
    this.stopped = false;
    this.health = { degraded: false, reason: null };
    this.connect();
  }

  connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/live`;
    const ws = new WebSocket(url);
    this.ws = ws;
    this.on.state('connecting');
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: this.token }));
    ws.onmessage = (e) => this.frame(JSON.parse(e.data));
    ws.onclose = (e) => {
      this.ready = false;
      if (this.stopped) return;
      // 4401/4403: the token was refused; anything else is a drop worth retrying.
      if (e.code === 4401 || e.code === 4403) return this.on.refused();
      this.on.state('reconnecting');
      setTimeout(() => !this.stopped && this.connect(), reconnectMs);
    };
  }

  frame(f) {
    switch (f.type) {
      case 'hello':
        this.ready = true;
        this.health = f.health;
        this.on.health(f.health);
        this.on.state('live');
        this.sendSubscription();
        break;
      case 'status':
        this.on.status(f.campaigns);
        break;
      case 'breaker':
        this.on.breaker(f);
        break;
      case 'budget':
        this.on.budget(f);
        break;
      case 'archived':
      case 'restored':
        this.on.archive(f);
        break;
      case 'health':
        this.health = { degraded: f.degraded, reason: f.reason };
        this.on.health(this.health);
        break;
      case 'error':
        console.warn('live feed:', f.code, f.message);
        break;
      default:
        break;
    }
  }

  /** Follows these campaigns (and only these) from now on; at most the feed's 1,000 per connection. */
  watch(ids) {
    this.wanted = [...new Set(ids)].slice(0, 1000);
    this.sendSubscription();
  }

  sendSubscription() {
    if (!this.ready) return;
    this.ws.send(JSON.stringify({ type: 'unsubscribe', all: true }));
    // A subscribe answers with the current status of every newly named campaign at once.
    if (this.wanted.length > 0) this.ws.send(JSON.stringify({ type: 'subscribe', campaigns: this.wanted }));
  }

  stop() {
    this.stopped = true;
    this.ws?.close();
  }
}
