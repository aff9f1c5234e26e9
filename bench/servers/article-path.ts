// The reference article's request path, as a baseline: blacklist lookup, ZCOUNT, XADD, then the
// window ZADD, each an awaited round trip, in an Express 5 route. Not atomic; that is the point.
import express from 'express';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL!);
const prefix = process.env.KEY_PREFIX!;
const blacklistKey = process.env.BLACKLIST_KEY!;
const lookup = process.env.BLACKLIST_BACKEND === 'cuckoo' ? (ip: string) => redis.call('CF.EXISTS', blacklistKey, ip) : (ip: string) => redis.sismember(blacklistKey, ip);
const streamKey = `${prefix}article:stream`;
const windowMs = 10_000;

const app = express();
app.post('/', express.json(), async (req, res) => {
  const { device_id, ip, transaction_id } = req.body as Record<string, string>;
  const ts = Date.now();
  let fraudType = 'clean';
  if ((await lookup(ip!)) === 1) fraudType = 'ip_blacklist';
  else if ((await redis.zcount(`${prefix}article:${device_id}`, ts - windowMs, ts)) >= 2) fraudType = 'click_spam';
  await redis.xadd(streamKey, 'MAXLEN', '~', 100_000, '*', 'device_id', device_id!, 'ip', ip!, 'transaction_id', transaction_id!, 'fraud_type', fraudType, 'ts', String(ts));
  await redis.zadd(`${prefix}article:${device_id}`, ts, transaction_id!);
  res.json({ transaction_id, device_id, ip, fraud_type: fraudType, ts });
});
const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('listening'));
process.on('SIGTERM', () => server.close(() => redis.quit().then(() => process.exit(0))));
