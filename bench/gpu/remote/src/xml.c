#include <stdlib.h>
void *xmlFree = 0;
void xmlAddChild(void){abort();}
void xmlCopyNamespace(void){abort();}
void xmlDocDumpFormatMemoryEnc(void){abort();}
void xmlDocGetRootElement(void){abort();}
void xmlDocSetRootElement(void){abort();}
void xmlFreeDoc(void){abort();}
void xmlFreeNode(void){abort();}
void xmlFreeNs(void){abort();}
void xmlKeepBlanksDefault(void){abort();}
void xmlNewDoc(void){abort();}
void xmlNewNs(void){abort();}
void xmlNewProp(void){abort();}
void xmlSetGenericErrorFunc(void){abort();}
void xmlStrdup(void){abort();}
void xmlUnlinkNode(void){abort();}
void xmlReadMemory(void){abort();}
