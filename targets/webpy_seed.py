"""The seed: web.py's cookbook page "How to Stream Large Files", as written.

Everything below the marked lines is the page's code verbatim (routes, pieces, hand-set
headers, sleeps). The only addition is the time scale (``CONFORMANCE_TIME_SCALE``), which
multiplies every sleep so tests can run the same schedule faster. Run it as
``python -m targets.webpy_seed 127.0.0.1:PORT``.
"""
# --- added: the time-scale knob -------------------------------------------------------------
import time as _real_time
if __package__:
    from .timescale import scaled_time
else:   # run as a script, ``{targets}/webpy_seed.py`` (web.py reloads its own file by name)
    from timescale import scaled_time
# --- the seed, verbatim ---------------------------------------------------------------------
# Simple streaming server demonstration
# Uses time.sleep to emulate a large file read
import web
import time
time = scaled_time(_real_time)  # added: the one change, every sleep × time scale
 
urls = (
    "/",    "count_holder",
    "/(.*)",  "count_down",
    )
app = web.application(urls, globals())
 

class count_down:
    def GET(self,count):
        # These headers make it work in browsers
        web.header('Content-type','text/html')
        web.header('Transfer-Encoding','chunked')        
        yield '<h2>Prepare for Launch!</h2>'
        j = '<li>Liftoff in %s...</li>'
        yield '<ul>'
        count = int(count)
        for i in range(count,0,-1):
            out = j % i
            time.sleep(1)
            yield out
        yield '</ul>'
        time.sleep(1)
        yield '<h1>Lift off</h1>'
        
class count_holder:
    def GET(self):
        web.header('Content-type','text/html')
        web.header('Transfer-Encoding','chunked')        
        boxes = 4
        delay = 3
        countdown = 10
        for i in range(boxes):
            output = '<iframe src="/%d" width="200" height="500"></iframe>' % (countdown - i)
            yield output
            time.sleep(delay)
        
if __name__ == "__main__":
    app.run()
