// An Express app as the tests run it behind the gateway: Express routes on the raw path
// (case-insensitively, without decoding it), so it shows which handler a request really
// reaches. Every answer names that handler and what Express saw.
//   node app.mjs PORT
import express from 'express';

const port = Number(process.argv[2] || 3000);
const app = express();

const answer = (handler) => (req, res) => {
  res.set('x-upstream', 'express');
  res.json({
    handler,
    path: req.path,
    originalUrl: req.originalUrl,
    headers: req.headers,
  });
};

app.use('/admin', answer('admin'));
app.use('/owner', answer('owner'));
app.use('/pub', answer('pub'));
app.use('/raw', answer('raw'));
app.use(answer('other'));

const server = app.listen(port, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
