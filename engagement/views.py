from django.http import HttpResponse


def _todo(request, *args, **kwargs):
    return HttpResponse(status=501)


case_list = my_requests = report = case_detail = _todo
