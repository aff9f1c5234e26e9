// The framework ceiling: Express 5 parsing the same JSON body and answering a constant.
import express from 'express';

const app = express();
app.post('/', express.json(), (_req, res) => {
  res.json({ status: 'clean', fraud_type: 'clean' });
});
const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
